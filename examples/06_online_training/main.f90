! Example 06: online training. A 2-D heat diffusion asks an ONNX surrogate for every time
! step and streams (input, target) samples — the field before the step and the solver's
! result — to an aggregation list. A Python trainer (trainer.py) fits the surrogate from
! those samples and stores it under the same name; from its next step on the simulation
! runs the trained model, and the surrogate's error drops.
!   06_online_training ADDRESS INITIAL_MODEL.onnx
program online
  use, intrinsic :: iso_fortran_env, only: real32, real64
  use insitu
  implicit none
  integer, parameter :: nx = 32, ny = 24, steps = 16, phase = 6
  real(real32), parameter :: alpha = 0.2_real32
  real(real32) :: u(1, 1, nx, ny), expected(1, 1, nx, ny), pred(1, 1, nx, ny)
  real(real32) :: padded(0:nx + 1, 0:ny + 1)
  type(insitu_client) :: c
  type(insitu_dataset) :: ds
  character(len=512) :: address, model
  character(len=16) :: name
  real(real64) :: err, before, after
  integer :: step, i, j

  call get_command_argument(1, address)
  call get_command_argument(2, model)
  call c%connect(trim(address))
  call c%set_model_from_file("surrogate", trim(model))

  u = 0
  u(1, 1, nx / 4:3 * nx / 4, ny / 3:2 * ny / 3) = 100
  before = 0
  after = 0
  do step = 1, steps
    if (step == phase + 1) then
      ! Wait (up to a minute) for the trainer to publish the model it fitted.
      if (.not. c%poll_tensor("model_version", 100, 600)) error stop "no trained model came"
    end if
    ! The solver's explicit step, zero boundaries: the truth.
    padded = 0
    padded(1:nx, 1:ny) = u(1, 1, :, :)
    do j = 1, ny
      do i = 1, nx
        expected(1, 1, i, j) = padded(i, j) + alpha * (padded(i - 1, j) + padded(i + 1, j) &
          + padded(i, j - 1) + padded(i, j + 1) - 4 * padded(i, j))
      end do
    end do
    ! The surrogate's step, from whatever model is stored now.
    call c%put_tensor("u", u)
    call c%run_model("surrogate", ["u"], ["u_pred"])
    call c%get_tensor("u_pred", pred)
    err = sqrt(sum(real(pred - expected, real64)**2) / (nx * ny))
    print '(a, i3, a, es10.3)', "step ", step, ": surrogate RMS error ", err
    if (step <= phase) then
      before = before + err / phase
    else
      after = after + err / (steps - phase)
    end if
    ! Stream the sample for the trainer.
    write (name, '(a, i0)') "sample_", step
    call ds%create(trim(name))
    call ds%add_tensor("input", u)
    call ds%add_tensor("target", expected)
    call c%put_dataset(ds)
    call c%append_to_list("samples", ds)
    u = expected
  end do
  print '(a, es10.3)', "mean RMS error before training: ", before
  print '(a, es10.3)', "mean RMS error after training:  ", after
  if (.not. (after < before / 100)) error stop "the trained surrogate is not better"
  print '(a)', "example 06: the error dropped after online training"
end program online
