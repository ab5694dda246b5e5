! put + get of a 16 MiB real64 array (2048 x 1024) from Fortran, in process, in both
! layouts; prints the median microseconds of each. Compared with bench_c.c by
! ./dev.sh bench (benches/fortran/run.sh).
program bench_layouts
  use, intrinsic :: iso_fortran_env, only: real64, int64
  use insitu
  implicit none
  integer, parameter :: nx = 2048, ny = 1024, reps = 41
  real(real64), allocatable :: a(:, :), b(:, :)
  real(real64) :: t(reps)
  type(insitu_client) :: c
  integer :: r, layout
  integer(int64) :: t0, t1, rate
  character(len=*), parameter :: names(0:1) = ["natural   ", "contiguous"]
  allocate(a(nx, ny), b(nx, ny))
  call random_number(a)
  call c%connect("inproc")
  do layout = 0, 1
    do r = 1, reps
      call system_clock(t0, rate)
      call c%put_tensor("a", a, layout=layout)
      call c%get_tensor("a", b, layout=layout)
      call system_clock(t1)
      t(r) = real(t1 - t0, real64) / real(rate, real64) * 1e6_real64
    end do
    if (any(a /= b)) error stop "round trip differs"
    call sort(t)
    print '(a, a, a, f12.1)', "fortran ", trim(names(layout)), " put+get 16 MiB us: ", t(reps / 2 + 1)
  end do
contains
  subroutine sort(x)
    real(real64), intent(inout) :: x(:)
    integer :: i, j
    real(real64) :: v
    do i = 2, size(x)
      v = x(i)
      j = i - 1
      do while (j >= 1)
        if (x(j) <= v) exit
        x(j + 1) = x(j)
        j = j - 1
      end do
      x(j + 1) = v
    end do
  end subroutine sort
end program bench_layouts
